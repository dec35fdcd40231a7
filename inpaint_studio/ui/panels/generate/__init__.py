"""The Generate panel: its view, and the model picker."""
