"""Pure decision code: signals + group state + time in, verdicts out. No I/O, no clock, no global config."""
