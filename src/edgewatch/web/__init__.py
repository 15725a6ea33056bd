"""The live page: annotated video, live numbers, events with their media, the API and metrics."""
