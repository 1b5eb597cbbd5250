"""Capture of whole calls (`CALLBRIDGE_CAPTURE_DIR`) and `callbridge replay` of them through the
core: `recorder` buffers a call's inputs and decisions, `file` writes and reads them (numbers
masked, secrets dropped), `replay` drives a fresh session with them and compares."""
