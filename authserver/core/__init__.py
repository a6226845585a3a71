"""Layer 0 foundations that every other package may use: secrets, one-time use, clock.

Nothing here imports another authserver package except `config` and `extensions`.
"""
