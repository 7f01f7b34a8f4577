"""Past one machine: evaluation on Ray (ray_pool), training through accelerate (launch)."""
