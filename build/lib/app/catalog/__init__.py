"""The shared catalog: reading listing files, assigning topics and importing posts."""
