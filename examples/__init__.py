"""The examples: each folder is a complete ML backend with its own requirements and tests."""
