"""The main job (`make run`) and the resumable steps it is made of."""
