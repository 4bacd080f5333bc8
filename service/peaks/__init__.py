"""Waveform peaks of a recording, in the format of BBC's audiowaveform: computed once from the
WAV, kept in storage, read by players that draw a call without downloading it."""
