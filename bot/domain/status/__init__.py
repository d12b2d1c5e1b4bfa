"""The public status page: each service's state from the health watches, and open incidents' public updates."""
