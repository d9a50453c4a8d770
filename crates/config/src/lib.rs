//! Reader for xinetd configuration files, with kinetd's extensions.
