//! Workspace test-suite package (no library code).
