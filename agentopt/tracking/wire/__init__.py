"""Wire formats: parsing bodies and streams, assembling them, translating between them."""
