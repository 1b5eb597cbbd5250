"""Audio helpers shared by the bridge and the test kit: the G.711 μ-law codec, streaming
8 kHz ⇄ 24 kHz resampling for PCM16 agents, and WAV I/O.

Nothing here touches sockets or clocks; every function is pure, and each resampler object holds
only its own stream's state.
"""
