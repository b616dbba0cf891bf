"""Loaders for real Binance market data: 1-minute klines, L2 stream files, trades and bookTicker."""
