"""Gymnasium / RLlib environments that frame a search as reinforcement learning.

Imported as ``raynas.envs`` (never as a bare ``envs``). The environments
themselves (``NASEnv``, ``MultiAgentNASEnv``) are the subject of a later issue;
this package exists so the installed layout is fixed from the start.
"""
