"""`recordings dev` and its embedded servers: tooling for a checkout, never in the wheel."""
