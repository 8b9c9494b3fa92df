.PHONY: cassettes

# Re-record the cassette corpus with the real Claude Code CLI (CLAUDE_BIN, PATH or node_modules).
cassettes:
	python -m harness.recording.rerecord --out-dir cassettes
