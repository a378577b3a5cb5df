"""The HTTP server: `create_app`, its routes, middleware and the `Backend` that wires the model
to scheduling, background delivery and training. Private: free to change between releases."""
