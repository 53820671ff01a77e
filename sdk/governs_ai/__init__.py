"""The governs_ai client SDK."""
