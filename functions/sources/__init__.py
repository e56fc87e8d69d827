"""Where a document comes from besides pasted text: files and URLs."""
