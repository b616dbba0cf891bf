"""The learning loop: challengers retrained on recent days, judged against the champions on days
neither saw, promoted through Serve, and rolled back."""
