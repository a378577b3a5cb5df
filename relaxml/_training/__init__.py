"""Training in the background: the queue of events, the trainer loop, model versions and the
keeper that swaps a new version in. Private: free to change between releases."""
