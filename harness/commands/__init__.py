"""One module per `iadbench` command: each registers its parser and handler (`register`)."""
