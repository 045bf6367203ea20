"""Code the tests run outside the test process (worker entry points); never imported by
the apps."""
