"""darkroom-batch: apply one processor pipeline to many images, resumably, over many processors."""
