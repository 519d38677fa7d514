"""The command line's exit codes (see the epilog of `trainrig --help`)."""

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_READER_GONE = 141  # as a shell reports a writer ended by a closed pipe (128 + SIGPIPE)
