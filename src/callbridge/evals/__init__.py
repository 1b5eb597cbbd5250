"""`callbridge eval`: scenario tests of an agent, run through the real server on this machine."""
