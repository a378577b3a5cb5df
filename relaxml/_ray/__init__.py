"""Running relaxml on Ray (`--engine ray`): the optional `relaxml[ray]` extra.

Nothing here is imported by the rest of relaxml unless `--engine ray` is asked for, and nothing
here imports Ray at module level: `import relaxml` never needs it.
"""
