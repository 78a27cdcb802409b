"""Architecture support: how guest CPU structures look in memory."""
