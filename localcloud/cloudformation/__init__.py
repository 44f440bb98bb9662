"""cloudformation"""
