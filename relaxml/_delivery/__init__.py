"""Background predictions: the durable outbox, the jobs that fill it and the worker that
delivers its predictions to Label Studio. Private: free to change between releases."""
