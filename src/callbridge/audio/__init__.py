"""Audio helpers shared by the bridge and the test kit: the G.711 μ-law codec and WAV I/O.

Nothing here touches sockets or clocks; everything is a pure function of its input.
"""
