"""Running a model with no Label Studio and no server: `relaxml predict` and `relaxml check`."""
