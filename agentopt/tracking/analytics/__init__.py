"""What the records add up to: usage statistics, billing reconciliation, summaries."""
