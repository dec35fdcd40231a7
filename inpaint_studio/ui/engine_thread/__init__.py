"""engine_thread"""
