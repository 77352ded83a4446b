"""EEG observation model: lead fields (MNE), sensor noise, epochs and evoked responses."""
