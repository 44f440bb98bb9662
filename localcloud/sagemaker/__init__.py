"""sagemaker"""
