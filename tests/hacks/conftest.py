# The fixture project is a user's task directory for `rhlab audit --command`, not part of this suite.
collect_ignore = ["fixtures"]
