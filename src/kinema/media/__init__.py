"""Media: fetching inputs safely, decoding images and masks, storing files, encoding video."""
