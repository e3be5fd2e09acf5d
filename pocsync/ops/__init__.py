"""What operators watch: health, metrics, logs."""
