"""Re-recording the cassette corpus: session scripts (sessions/*.yaml), the runner and `rerecord`."""
