"""The installation lifecycle: new installations, the gate, cutover and rollback, retirement, the audit log."""
