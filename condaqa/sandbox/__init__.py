"""The sandbox that foreign code runs in: who it runs as, which tool isolates it, what it may see and write."""
