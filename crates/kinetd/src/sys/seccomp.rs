//! Installing seccomp filters.
