"""What a network has learned: filters, feature maps, top-9 activations, deconvnet
reconstructions, Grad-CAM (visualize), occlusion sensitivity (occlusion), and the choices
these make so that they do not mislead (checks)."""
