"""Pure-Python document model: images, masks, compositing, job specs. No Qt, no torch."""
