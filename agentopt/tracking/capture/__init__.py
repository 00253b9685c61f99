"""The front-ends that catch calls: httpx, litellm, subprocesses, and the stream tee."""
