"""Weekly digests: ISO-week windows and the pure assembly of a digest's content."""
