"""A small real-archive-like set: files of every kind the county's archives hold, with engineers' questions."""
