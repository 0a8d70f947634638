"""The results explorer: an index over results directories, JSON queries, a web page, and a Ray Serve app."""
