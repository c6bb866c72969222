"""Training: the model, the loop that films W, and the forces log beside it."""
