"""A trained model as training writes it and serving reads it: the feature schema, the model directory,
and predictions from request bodies. Imported by the training steps (``pipelines``) and the inference
server (``containers.inference``) alike, and importing neither."""
