"""The data directory: its layout and identity, its SQLite file and the leader lock that lets
one worker of several run the background loops. Private: free to change between releases."""
