"""Loaders for real Binance market data: 1-minute klines and L2 stream files."""
